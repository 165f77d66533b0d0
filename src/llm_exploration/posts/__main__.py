"""``python -m llm_exploration.posts list | run <slug> | convert | site``."""

from __future__ import annotations

import argparse
import sys

from ..profiles import PROFILES
from .convert import convert_post
from .execute import PostExecutionError, build_site, find_post, list_posts, run_post

NOTEBOOK_NAME = "_{profile}.ipynb"  # beside index.qmd; Quarto ignores files starting with "_"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m llm_exploration.posts", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list posts, newest first")
    run = sub.add_parser("run", help="execute one post headless into posts/<slug>/_output/")
    run.add_argument("slug")
    run.add_argument("--profile", choices=PROFILES, default="cpu")
    run.add_argument("--timeout", type=int, default=3600, help="seconds per cell")
    conv = sub.add_parser("convert", help="write posts/<slug>/_<profile>.ipynb for nbmake")
    conv.add_argument("slugs", nargs="*", help="default: every post")
    conv.add_argument("--profile", choices=PROFILES, default="smoke")
    site = sub.add_parser("site", help="execute every post and export HTML to _site/ (no Quarto)")
    site.add_argument("--profile", choices=PROFILES, default="cpu")
    args = parser.parse_args(argv)

    try:
        if args.command == "list":
            for post in list_posts():
                print(f"{post.slug:24s} {post.date:12s} {post.title}")
        elif args.command == "run":
            run_post(args.slug, args.profile, timeout=args.timeout)
        elif args.command == "convert":
            posts = [find_post(s) for s in args.slugs] if args.slugs else list_posts()
            for post in posts:
                out = convert_post(
                    post.path,
                    post.folder / NOTEBOOK_NAME.format(profile=args.profile),
                    args.profile,
                )
                print(out)
        elif args.command == "site":
            print(f"site: {build_site(profile=args.profile) / 'index.html'}")
    except PostExecutionError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
