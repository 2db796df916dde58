"""Policy filters: one policy per module, each exposing ``create(options, context)``."""
