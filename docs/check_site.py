"""Check a built site as a reader would need it: every public name has an API page, every gallery
script has its page, and no internal link or anchor is broken.

Run:  python docs/check_site.py [docs/_build/html]     (after ``python -m sphinx -W -b html docs <out>``)
Exits 1 and lists the problems when there are any.
"""

from __future__ import annotations

import glob
import html.parser
import os
import sys
from urllib.parse import unquote, urlparse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import _api  # noqa: E402


class _Links(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs, self.ids = [], set()

    def handle_starttag(self, tag, attrs):
        for key, value in attrs:
            if key == "id" and value:
                self.ids.add(value)
            if key == "href" and value and tag in ("a", "link"):
                self.hrefs.append(value)
            if key == "name" and tag == "a" and value:
                self.ids.add(value)


def _parse(path, cache):
    if path not in cache:
        p = _Links()
        with open(path, encoding="utf-8") as fh:
            p.feed(fh.read())
        cache[path] = p
    return cache[path]


def check(site):
    problems = []
    for name in _api.public_names():
        if not os.path.exists(os.path.join(site, "api", "generated", f"{name}.html")):
            problems.append(f"no API page for {name}")
    for script in glob.glob(os.path.join(HERE, "examples", "plot_*.py")):
        stem = os.path.splitext(os.path.basename(script))[0]
        if not os.path.exists(os.path.join(site, "auto_examples", f"{stem}.html")):
            problems.append(f"no gallery page for examples/{stem}.py")
    cache = {}
    pages = [p for p in glob.glob(os.path.join(site, "**", "*.html"), recursive=True)
             if os.sep + "_static" + os.sep not in p]
    for page in pages:
        for href in _parse(page, cache).hrefs:
            parts = urlparse(href)
            if parts.scheme or parts.netloc or href.startswith(("mailto:", "javascript:")):
                continue
            target, frag = unquote(parts.path), parts.fragment
            path = os.path.normpath(os.path.join(os.path.dirname(page), target)) if target else page
            if os.path.isdir(path):
                path = os.path.join(path, "index.html")
            if not os.path.exists(path):
                problems.append(f"{os.path.relpath(page, site)}: broken link {href}")
            elif frag and path.endswith(".html") and unquote(frag) not in _parse(path, cache).ids:
                problems.append(f"{os.path.relpath(page, site)}: missing anchor {href}")
    return problems, len(pages)


def main():
    site = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "_build", "html")
    problems, n = check(site)
    for p in problems:
        print(p)
    print(f"checked {n} pages and {len(_api.public_names())} public names: {len(problems)} problems")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
