from extra:
  test.nop
