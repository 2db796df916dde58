"""The policy page and the overdue-review banner, through Starlette's TestClient.

"C4F referrers and users will be made aware of the existence of this policy and have access
to it upon request. C4F staff will be given a copy of this policy." Every signed-in role
reads the text the gateway serves (escaped, as written), its version and last review;
managers and admins see a banner on every page once that review is more than 12 months
old ("The policy will be reviewed and if necessary updated annually"), staff do not.
"""

from __future__ import annotations

import re
from pathlib import Path

from support.pki import TestCA
from support.web import MANAGER, STAFF, make_site, signed_in

from gateway.settings.policy import SHIPPED_FILE, SHIPPED_ON
from gateway.settings.web import WebSettings

BANNER = "The confidentiality policy's annual review is overdue."
DAY = 86400.0


def test_every_role_reads_the_shipped_policy_its_version_and_review(
    tmp_path: Path, ca: TestCA
) -> None:
    site = make_site(tmp_path / "gw", ca)
    shipped = SHIPPED_FILE.read_text(encoding="utf-8")
    with site.client() as client:
        assert client.get("/policy", follow_redirects=False).headers["location"] == "/signin"
        assert client.get("/policy.txt", follow_redirects=False).status_code == 303
        signed_in(client, STAFF, landing="/held")
        held = client.get("/held").text
        assert re.findall(r'<li><a href="([^"]+)"', held) == ["/held", "/requests/new", "/policy"]
        page = client.get("/policy")
        assert page.status_code == 200
        assert '<dd id="policy-version">1</dd>' in page.text
        assert f'<dd id="policy-reviewed">{SHIPPED_ON}</dd>' in page.text
        body = re.search(r'<pre class="policy-text" id="policy-text">(.*?)</pre>', page.text, re.S)
        assert body is not None
        assert body.group(1) == shipped.replace("'", "&#39;")
        copy = client.get("/policy.txt")
        assert copy.status_code == 200 and copy.content == shipped.encode()
        assert copy.headers["content-disposition"] == (
            'attachment; filename="confidentiality-policy-1.txt"'
        )


def test_managers_see_the_banner_once_the_review_is_overdue_staff_never(
    tmp_path: Path, ca: TestCA
) -> None:
    site = make_site(
        tmp_path / "gw",
        ca,
        config={"policy": {"version": "2025-1", "reviewed_on": "2025-03-01"}},
        # Sessions that outlast the day the test moves the console's clock on.
        web=WebSettings(require_totp=(), session_idle_timeout=2 * DAY, session_max_age=2 * DAY),
    )
    site.clock.now = 1_772_409_600.0 - DAY / 2  # 2026-03-01 12:00 UTC: twelve months exactly
    with site.client() as manager, site.client() as staff:
        signed_in(manager, MANAGER)
        signed_in(staff, STAFF, landing="/held")
        assert 'id="policy-review"' not in manager.get("/register").text
        assert "(overdue)" not in manager.get("/policy").text
        site.clock.advance(DAY)  # 2026-03-02 12:00 UTC: overdue
        for path in ("/register", "/held", "/policy"):
            page = manager.get(path).text
            assert BANNER in page, path
            assert "Version 2025-1 was last reviewed on 2025-03-01 (due again 2026-03-01)." in page
        policy = manager.get("/policy").text
        assert '<dd id="policy-due">2026-03-01 <strong class="warning">(overdue)</strong>' in (
            policy
        )
        for path in ("/held", "/policy"):
            assert 'id="policy-review"' not in staff.get(path).text, path


def test_a_policy_file_of_the_centres_own_is_shown_escaped(tmp_path: Path, ca: TestCA) -> None:
    own = tmp_path / "policy.txt"
    own.write_text(
        "Our policy <script>alert(1)</script> & more\nReviewed by the trustees.\n",
        encoding="utf-8",
    )
    site = make_site(
        tmp_path / "gw",
        ca,
        config={"policy": {"file": str(own), "version": "v<2>", "reviewed_on": "2026-11-30"}},
    )
    with site.client() as client:
        signed_in(client, MANAGER)
        page = client.get("/policy").text
        assert "<script>" not in page
        assert "Our policy &lt;script&gt;alert(1)&lt;/script&gt; &amp; more\n" in page
        assert '<dd id="policy-version">v&lt;2&gt;</dd>' in page
        copy = client.get("/policy.txt")
        assert copy.content == own.read_bytes()
        assert copy.headers["content-disposition"] == (
            'attachment; filename="confidentiality-policy-v-2-.txt"'
        )
        own.unlink()  # the console keeps running; the page says what is wrong
        page = client.get("/policy").text
        assert "The policy's text cannot be read: policy.file: cannot read" in page
        assert client.get("/policy.txt").status_code == 500
