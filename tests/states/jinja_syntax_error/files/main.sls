{% if True %}
never:
  test.nop
