"""Issue 16, item 8: ``khaibao up`` signs with a secret of its own data folder, never the
published development default.

Finding: "``khaibao up`` signs result-page tokens with the published development secret":
anyone who read the source could forge the cookie that opens a visitor's result page.

The whole local system runs (``khaibao up`` as a subprocess on free ports, temporary data
folder). A demo declaration is sent; its result page must not open with a token made with
``DEV_SECRET``, and must open with one made with the data folder's own ``secret_key`` file
(mode 0600), which a second start reuses.
"""
from __future__ import annotations

import stat

import httpx
import pytest

from libs.common.settings import DEV_SECRET, PLACEHOLDER_SECRETS
from services.declaration.web import RESULT_COOKIE, result_token
from tests.browser.declaration_support import demo_venues
from tests.reliability.faults_load import declaration_body

from tests.services.conftest import khaibao_up

pytestmark = [pytest.mark.slow]


def _declare(up) -> tuple[str, str]:  # noqa: ANN001
    code = demo_venues(up)[0]["code"]
    answer = httpx.post(f"{up.urls['declaration']}/api/declarations", json=declaration_body(code, 7), timeout=15)
    assert answer.status_code in (200, 201), answer.text
    return code, answer.json()["submission_id"]


def _result(up, code: str, submission: str, token: str) -> int:  # noqa: ANN001
    path = f"/v/{code}/done/{submission}"
    return httpx.get(up.urls["declaration"] + path, cookies={RESULT_COOKIE: token},
                     headers={"accept": "text/html"}, timeout=10).status_code


def test_khaibao_up_signs_with_a_secret_of_its_data_folder(tmp_path):
    data_dir = tmp_path / "var"
    with khaibao_up(data_dir, tmp_path / "up.log", timeout=90) as up:
        code, submission = _declare(up)
        # The published default opens nothing.
        assert _result(up, code, submission, result_token(DEV_SECRET, submission)) == 404
        secret_file = data_dir / "secret_key"
        assert secret_file.exists(), "khaibao up wrote no secret of its own"
        assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
        secret = secret_file.read_text().strip()
        assert len(secret) >= 32 and secret.lower() not in PLACEHOLDER_SECRETS
        # The services sign with the file's secret: a token made with it opens the page.
        assert _result(up, code, submission, result_token(secret, submission)) == 200
        assert secret not in up.log()


def test_the_secret_is_made_once_per_data_folder_and_reused(tmp_path):
    from libs.common.keys import local_secret_key

    first = local_secret_key(tmp_path / "a")
    again = local_secret_key(tmp_path / "a")
    other = local_secret_key(tmp_path / "b")
    assert first == again == tmp_path / "a" / "secret_key"
    assert first.read_text() == again.read_text()
    assert other.read_text() != first.read_text()
    for path in (first, other):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
