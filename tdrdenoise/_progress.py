"""Progress bars that stay quiet unless asked for (or on a terminal)."""
from tqdm.auto import tqdm

__all__ = []


def progress_bar(total, desc, progress):
    """A tqdm bar; ``progress=None`` shows it only on a terminal, ``False`` never."""
    disable = None if progress is None else not progress
    return tqdm(total=total, desc=desc, disable=disable, leave=False, unit="step")
