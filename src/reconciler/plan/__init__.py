"""The plan: model (typed actions), diff (field level), planner (decisions), render (text/json/markdown)."""
