"""One router per endpoint family; each module exposes ``router: fastapi.APIRouter``."""
