{% set x = undefined_function() %}
never:
  test.nop
