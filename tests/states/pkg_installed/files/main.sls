hello:
  pkg.installed
sl:
  pkg.removed
