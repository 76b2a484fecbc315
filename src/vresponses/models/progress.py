"""Step-by-step progress for long model jobs, shown with rich or sent to a plain callback."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

# What callers may pass as `progress`: a rich Progress (the CLI), a callable taking one line of
# text (tests, logs), or None (silent, e.g. the server preparing on first start without a terminal).
ProgressSink = Progress | Callable[[str], object] | None


def rich_progress(console: Console | None = None) -> Progress:
    """A rich Progress suited to `prepare_default_model`; use it as a context manager."""
    return Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        # stderr, so that a command whose stdout is piped still shows its progress.
        console=console or Console(stderr=True),
    )


class Steps:
    """Reports a fixed list of named steps, each started and finished in order, to a progress sink."""

    def __init__(self, sink: ProgressSink, title: str, names: Sequence[str]) -> None:
        self._title = title
        self._total = len(names)
        self._progress: Progress | None = None
        self._callback: Callable[[str], object] | None = None
        self._task: TaskID | None = None
        if isinstance(sink, Progress):
            self._progress = sink
            self._task = sink.add_task(title, total=self._total)
        else:
            self._callback = sink

    def note(self, message: str) -> None:
        """Send one line of text that is not a step (e.g. 'already prepared')."""
        if self._progress is not None:
            # escape: paths and model replies may contain [brackets] that rich would read as markup.
            self._progress.console.print(f"  {escape(message)}")
        elif self._callback is not None:
            self._callback(message)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Mark `name` as running for the duration of the block, then as done with its time."""
        started = time.monotonic()
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, description=f"{self._title}: {escape(name)}")
        elif self._callback is not None:
            self._callback(f"{name}...")
        yield
        elapsed = time.monotonic() - started
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task)
            self._progress.console.print(f"  [green]✓[/green] {escape(name)} ({elapsed:.1f}s)")
        elif self._callback is not None:
            self._callback(f"{name}: done ({elapsed:.1f}s)")

    def finish(self, message: str) -> None:
        """Mark the whole job as done with a closing line."""
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, description=f"{self._title}: done", completed=self._total)
        self.note(message)
