base:
  '*':
    - one
    - two
  'someone-else':
    - never
