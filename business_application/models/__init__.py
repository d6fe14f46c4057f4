from .applications import *  # noqa: F403
from .events import *  # noqa: F403
from .incidents import *  # noqa: F403
