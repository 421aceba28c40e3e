"""Plans and reports, rendered for people and programs."""

PLAN_FORMATS = ("text", "json", "markdown")
