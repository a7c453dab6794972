"""The accounts page (admins): every account with its role and state; create one,
change a role, disable or enable, reset a password. Each change is a ``console`` audit
record naming the admin. An admin cannot lower or disable their own account, so the
console is never left without one by a slip. And every account's own page
(``/console/account``): changing its password, which needs the current one."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from screening.console.accounts import ROLES
from screening.console.sessions import COOKIE
from screening.console.web import Console, blocking, guarded, render
from screening.errors import ConfigError

__all__ = ["routes"]


def routes(console: Console) -> list[Route]:
    async def listing(request: Request, error: str = "") -> Response:
        accounts = await blocking(console.accounts.all)
        done = "" if error else request.query_params.get("done", "")
        return render(request, console, "accounts.html", 400 if error else 200,
                      accounts=accounts, roles=ROLES, done=done[:20], error=error)  # fmt: skip

    @guarded(console, "admin")
    async def page(request: Request) -> Response:
        return await listing(request)

    @guarded(console, "admin")
    async def change(request: Request) -> Response:
        fields, admin = request.state.form, request.state.account.name
        action, name = fields.get("action", ""), fields.get("name", "").strip()
        error = ""
        try:
            if action == "add":
                account = await blocking(console.accounts.add, name, fields.get("role", ""),
                                         fields.get("password", ""))  # fmt: skip
                await blocking(console.audit.action, admin, "add_user", name=account.name,
                               role=account.role)  # fmt: skip
            elif action == "password" and name and name != admin:
                if not await blocking(console.accounts.set_password, name,
                                      fields.get("password", "")):  # fmt: skip
                    error = f"no account {name}"
                else:
                    await blocking(console.audit.action, admin, "reset_password", name=name)
            elif action in ("role", "disable", "enable") and name and name != admin:
                role = fields.get("role") if action == "role" else None
                disabled = {"disable": True, "enable": False}.get(action)
                if not await blocking(console.accounts.update, name, role=role, disabled=disabled):
                    error = f"no account {name}"
                else:
                    await blocking(console.audit.action, admin, f"{action}_user", name=name,
                                   **({"role": role} if role else {}))  # fmt: skip
            else:
                error = "an admin cannot change their own account here"
        except ConfigError as exc:
            error = str(exc)
        if error:  # shown at once, never carried in a URL someone else could forge
            return await listing(request, error)
        return RedirectResponse(console.url(f"/accounts?done={action}"), status_code=303)

    @guarded(console, "viewer")
    async def own(request: Request) -> Response:
        done = request.query_params.get("done", "") == "password"
        return render(request, console, "account.html", done=done)

    @guarded(console, "viewer")
    async def change_own(request: Request) -> Response:
        fields, name = request.state.form, request.state.account.name
        new = fields.get("new", "")
        try:
            if new != fields.get("again", ""):
                raise ConfigError("the new passwords differ")
            changed = await blocking(console.accounts.change_password, name,
                                     fields.get("current", ""), new)  # fmt: skip
        except ConfigError as exc:
            return render(request, console, "account.html", 400, error=str(exc))
        if not changed:
            await blocking(console.audit.action, name, "password_change_failed")
            return render(request, console, "account.html", 400,
                          error="The current password is wrong.")  # fmt: skip
        await blocking(console.audit.action, name, "password_change")
        account = await blocking(console.accounts.get, name)
        response = RedirectResponse(console.url("/account?done=password"), status_code=303)
        if account is not None:  # this session goes on; those under the old password end
            _, cookie = console.signer.issue(name, stamp=account.stamp)
            response.set_cookie(COOKIE, cookie, max_age=int(console.signer.lifetime),
                                **console.signer.cookie_flags())  # type: ignore[arg-type]
        return response

    return [
        Route("/accounts", page, methods=["GET"]),
        Route("/accounts", change, methods=["POST"]),
        Route("/account", own, methods=["GET"]),
        Route("/account", change_own, methods=["POST"]),
    ]
