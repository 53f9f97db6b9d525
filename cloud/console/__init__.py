"""The staff console: server-rendered pages (Jinja2), charts drawn by a vendored uPlot, zh-CN first."""
