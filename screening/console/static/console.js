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

// Lists drafts: a chosen file (CSV of terms, JSONL of bank entries) is read into the form's
// text area named by its data-into (the form posts text, so the import's validation
// reports bad rows by line as it does for `wordlist import`).
document.addEventListener("DOMContentLoaded", () => {
  for (const file of document.querySelectorAll("input[type=file][data-into]")) {
    file.addEventListener("change", async () => {
      const area = file.form.querySelector(`textarea[name=${file.dataset.into}]`);
      if (file.files.length) area.value = await file.files[0].text();
    });
  }
});
