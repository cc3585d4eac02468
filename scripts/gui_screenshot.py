"""Take docs/gui.png: the chat page in headless Chromium with the real plugins.

    .venv/bin/python scripts/gui_screenshot.py [--dark] [--width 1100] [--out docs/gui.png]

The gateway runs in-process on 127.0.0.1 with the three real plugins (Copilot,
Pollinations, openai_compat as Groq) pointed at their emulators
(tests/emulated_plugins.py), so the picker shows what they list and the answer is what
the emulated upstream sends (nothing leaves the host).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.browser import LiveGateway, chromium  # noqa: E402
from tests.emulated_plugins import emulated_plugins  # noqa: E402

MODEL = ("Pollinations", "deepseek-reasoning")  # a reasoning model: the reasoning shows too


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dark", action="store_true")
    parser.add_argument("--width", type=int, default=1100)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--out", default=str(ROOT / "docs" / "gui.png"))
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as data,
        emulated_plugins() as emu,
        LiveGateway(emu.plugins, gui=True, data_dir=data, **emu.config) as live,
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
        value = page.evaluate(
            """([provider, model]) => [...document.querySelectorAll('#model option')]
                .find((o) => o.parentElement.label === provider
                    && o.textContent.split(' ')[0] === model).value""",
            list(MODEL),
        )
        page.select_option("#model", value)
        page.click("#toggle-settings")
        page.fill("#system-prompt", "Answer briefly, with an example.")
        page.click("#toggle-settings")  # closed again: the chat is the picture
        page.fill("#prompt", "Squares of 0 to 5 in Python?")
        page.press("#prompt", "Enter")
        page.wait_for_selector("#send:not([hidden])")
        page.fill("#prompt", "And as a generator?")
        page.mouse.move(args.width // 2, args.height // 2)  # no hover effect in the picture
        page.screenshot(path=args.out)
        context.close()
    print(args.out)


if __name__ == "__main__":
    main()
