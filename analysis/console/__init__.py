"""The review console: human labels, agreement with the scorers, and alert triage, in the browser.

``python -m analysis.console --config F`` serves it (127.0.0.1:8080 by default);
``python -m analysis.console add-user NAME --role R`` creates accounts. See docs/console.md.
"""
