"""Posts without Quarto: convert ``index.qmd`` to a notebook, execute it, export it."""

from .convert import PostFormatError, convert_post, qmd_to_notebook
from .execute import (
    Post,
    PostExecutionError,
    PostNotFoundError,
    build_site,
    find_post,
    list_posts,
    project_root,
    run_post,
)

__all__ = [
    "Post",
    "PostExecutionError",
    "PostFormatError",
    "PostNotFoundError",
    "build_site",
    "convert_post",
    "find_post",
    "list_posts",
    "project_root",
    "qmd_to_notebook",
    "run_post",
]
