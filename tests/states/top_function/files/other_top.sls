base:
  '*':
    - only
