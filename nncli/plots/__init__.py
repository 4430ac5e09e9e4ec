"""Pictures of a model: learning curves and a confusion matrix, a conv layer's filters, the
feature maps of one image, the layers and their arrows. The only room that imports matplotlib
(the ``plot`` extra).

Two steps: ``panels`` turns arrays into what each picture plots (pure data, numpy only), and
``draw`` renders exactly that data as a PNG of a documented size. ``require`` is the check the
command makes first, so a missing matplotlib is one line and exit 2, not a traceback.
"""

from __future__ import annotations

from nncli.errors import SpecError

INSTALL_HINT = 'pip install -e ".[plot]"'


def require(command: str = "nncli plot") -> None:
    """SpecError (exit 2) naming the install command when matplotlib cannot be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise SpecError(
            f"{command} draws with matplotlib, which is not installed: {INSTALL_HINT}"
        ) from None


def available() -> bool:
    """Whether matplotlib can be imported (a command that draws only when it can asks)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True
