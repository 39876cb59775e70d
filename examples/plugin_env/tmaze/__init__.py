"""memrl-tmaze: a T-maze memory task, registered in memrl as `tmaze/TMaze-v0`."""

from tmaze.tmaze import TMaze

__all__ = ["TMaze"]
