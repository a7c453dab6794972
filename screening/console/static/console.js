// Review queue keyboard: j/k select the next/previous verdict, c confirms it, o overturns
// it (with the category chosen in its form). Typing in a field is left alone.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const items = Array.from(document.querySelectorAll("#queue .item"));
  if (!items.length) return;
  let current = 0;
  const select = (i) => {
    items[current].classList.remove("selected");
    current = Math.max(0, Math.min(items.length - 1, i));
    items[current].classList.add("selected");
    items[current].scrollIntoView({ block: "nearest" });
  };
  select(0);
  document.addEventListener("keydown", (event) => {
    const tag = event.target.tagName;
    if (["INPUT", "TEXTAREA", "SELECT"].includes(tag) || event.ctrlKey || event.metaKey || event.altKey) return;
    const button = { c: ".confirm", o: ".overturn" }[event.key];
    if (event.key === "j") select(current + 1);
    else if (event.key === "k") select(current - 1);
    else if (button) {
      event.preventDefault();
      items[current].querySelector("form.decide").requestSubmit(items[current].querySelector(button));
    }
  });
});

// Lists draft: a chosen CSV file is read into the form's text area (the form posts text,
// so the import's validation reports bad rows by line as it does for `wordlist import`).
document.addEventListener("DOMContentLoaded", () => {
  const file = document.getElementById("csv-file");
  if (!file) return;
  file.addEventListener("change", async () => {
    if (file.files.length) file.form.querySelector("textarea[name=csv]").value = await file.files[0].text();
  });
});
