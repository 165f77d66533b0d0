"""``python -m llm_exploration.posts list | run <slug> | convert | site``.

``--profile`` picks the scale; without it ``LLM_EXPLORATION_PROFILE`` does, else each post's
parameters cell. Bad input is one line on stderr and exit status 2 (``--debug``: traceback).
"""

from __future__ import annotations

import sys

from .. import cli
from ..settings import Rule, check_value
from .convert import convert_post
from .execute import PostExecutionError, build_site, find_post, list_posts, post_profile, run_post

NOTEBOOK_NAME = "_{profile}.ipynb"  # beside index.qmd; Quarto ignores files starting with "_"
PROG = "python -m llm_exploration.posts"
PROFILE_HELP = "smoke, cpu or gpu (default: $LLM_EXPLORATION_PROFILE, else the post's cell)"


def _main(argv: list[str]) -> int:
    parser = cli.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list posts, newest first")
    run = sub.add_parser("run", help="execute one post headless into posts/<slug>/_output/")
    run.add_argument("slug")
    run.add_argument("--profile", help=PROFILE_HELP)
    run.add_argument("--timeout", type=int, default=3600, help="seconds per cell")
    conv = sub.add_parser("convert", help="write posts/<slug>/_<profile>.ipynb for nbmake")
    conv.add_argument("slugs", nargs="*", help="default: every post")
    conv.add_argument("--profile", help=PROFILE_HELP)
    site = sub.add_parser("site", help="execute every post and export HTML to _site/ (no Quarto)")
    site.add_argument("--profile", help=PROFILE_HELP)
    args = parser.parse_args(argv)

    try:
        if args.command == "list":
            for post in list_posts():
                print(f"{post.slug:24s} {post.date:12s} {post.title}")
        elif args.command == "run":
            check_value("timeout", args.timeout, int, Rule(ge=1), source="--timeout")
            run_post(args.slug, args.profile, timeout=args.timeout)
        elif args.command == "convert":
            posts = [find_post(s) for s in args.slugs] if args.slugs else list_posts()
            for post in posts:
                profile = post_profile(post, args.profile)
                out = post.folder / NOTEBOOK_NAME.format(profile=profile)
                print(convert_post(post.path, out, profile))
        elif args.command == "site":
            print(f"site: {build_site(profile=args.profile) / 'index.html'}")
    except PostExecutionError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    return cli.run(_main, PROG, argv)


if __name__ == "__main__":
    sys.exit(main())
