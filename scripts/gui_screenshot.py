"""Take docs/gui.png: the chat page in headless Chromium with a scripted answer.

    .venv/bin/python scripts/gui_screenshot.py [--dark] [--width 1100] [--out docs/gui.png]

The gateway runs in-process on 127.0.0.1 with a test provider that answers with a fixed
Markdown reply (nothing leaves the host).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from g4f_server import events, hookimpl  # noqa: E402
from g4f_server.provider import ModelInfo, ProviderInfo  # noqa: E402
from tests.browser import LiveGateway, chromium  # noqa: E402
from tests.media_providers import Painter, Speaker  # noqa: E402

ANSWER = """A list comprehension builds the squares in one line:

```python
squares = [n * n for n in range(6)]
print(squares)  # [0, 1, 4, 9, 16, 25]
```

| form | reads as |
| --- | --- |
| `[f(x) for x in xs]` | a new list |
| `(f(x) for x in xs)` | a lazy generator |

Use the generator form when the result is only iterated once."""


class Showcase:
    @hookimpl
    def provider_info(self) -> ProviderInfo:
        return ProviderInfo(name="Copilot", default_model="gpt-4o")

    @hookimpl
    async def list_models(self) -> list[ModelInfo]:
        return [
            ModelInfo("gpt-4o", frozenset({"chat", "vision", "tools", "reasoning"})),
            ModelInfo("gpt-4o-mini", frozenset({"chat", "tools"})),
        ]

    @hookimpl
    async def chat(self) -> AsyncIterator[events.ChatEvent]:
        yield events.ReasoningDelta("The user wants the idiomatic form; show both.")
        yield events.TextDelta(ANSWER)
        source = "https://docs.python.org/3/tutorial/datastructures.html"
        yield events.Citation(source, "Python tutorial")
        yield events.Finish("stop")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dark", action="store_true")
    parser.add_argument("--width", type=int, default=1100)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--out", default=str(ROOT / "docs" / "gui.png"))
    args = parser.parse_args()
    plugins = [Showcase(), Painter(), Speaker()]
    with (
        tempfile.TemporaryDirectory() as data,
        LiveGateway(plugins, gui=True, data_dir=data) as live,
        chromium() as browser,
    ):
        context = browser.new_context(
            viewport={"width": args.width, "height": args.height},
            color_scheme="dark" if args.dark else "light",
            device_scale_factor=1,
        )
        page = context.new_page()
        page.goto(live.url + "/")
        page.wait_for_selector("html[data-ready='1']")
        page.fill("#prompt", "Squares of 0 to 5 in Python?")
        page.press("#prompt", "Enter")
        page.wait_for_selector("#send:not([hidden])")
        page.fill("#prompt", "And as a generator?")
        page.screenshot(path=args.out)
        context.close()
    print(args.out)


if __name__ == "__main__":
    main()
