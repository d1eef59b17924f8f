"""Starting the reference backend: resolve its folders, create demo artifacts, run uvicorn."""
from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path

from chronon_airflow import settings
from chronon_reference_backend import models

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
OPENAPI_PATH = Path(__file__).with_name("openapi.json")
ADMIN_ENV = "CHRONON_BACKEND_ENABLE_ADMIN"


def default_home() -> Path:
    return Path(os.environ.get("CHRONON_BACKEND_HOME") or Path.cwd() / ".chronon" / "backend").resolve()


def resolve_warehouse(home: Path, warehouse: str | os.PathLike | None) -> Path:
    """``--warehouse``, else ``$CHRONON_WAREHOUSE``, else ``<home>/warehouse``."""
    value = warehouse or os.environ.get("CHRONON_WAREHOUSE") or Path(home) / "warehouse"
    return Path(value).expanduser().resolve()


def admin_enabled(flag: bool) -> bool:
    return flag or os.environ.get(ADMIN_ENV, "").lower() in ("1", "true", "yes")


def init_models(home: Path, repo: Path | None = None, overwrite: bool = False) -> list[Path]:
    """Create the demo artifact of every ``reference``-backend model in ``<repo>/production``."""
    repo = Path(repo) if repo else settings.PROJECT_ROOT / "configs"
    created = []
    for model in models.reference_models_in_repo(repo):
        try:
            created.append(models.create_artifact(home, model, overwrite=overwrite))
        except ValueError as e:
            # A model the reference pipelines cannot serve: registration will report it.
            log.warning("no demo artifact for %s: %s", model.get("metaData", {}).get("name"), e)
    return created


def serve(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, home: Path | None = None,
          warehouse: str | None = None, enable_admin: bool = False, repo: Path | None = None,
          workers: int = 2) -> None:
    import uvicorn

    from chronon_reference_backend.app import create_app

    home = Path(home).resolve() if home else default_home()
    home.mkdir(parents=True, exist_ok=True)
    root = resolve_warehouse(home, warehouse)
    if not (home / "models").exists():
        created = init_models(home, repo)
        log.warning("empty home %s: created %d demo model artifact(s)", home, len(created))
    app = create_app(home, root, enable_admin=admin_enabled(enable_admin), workers=workers)
    print(f"chronon model backend on http://{host}:{port} (OpenAPI UI http://{host}:{port}/docs), "
          f"home {home}, warehouse {root}", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="info")


def openapi_document() -> dict:
    """The contract as the app serves it (built on a throwaway home, nothing else is touched)."""
    from chronon_reference_backend.app import create_app

    with tempfile.TemporaryDirectory() as tmp:
        return create_app(Path(tmp), Path(tmp) / "warehouse").openapi()


def write_openapi(path: Path = OPENAPI_PATH) -> Path:
    path.write_text(json.dumps(openapi_document(), indent=2, sort_keys=True) + "\n")
    return path
