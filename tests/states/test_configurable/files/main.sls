multiline:
  test.configurable_test_state:
    - changes: True
    - result: True
    - comment: |
        first line
        second line
          indented third
warned:
  test.configurable_test_state:
    - changes: False
    - result: True
    - comment: with a warning
    - warnings:
      - This is a warning that is long enough to be wrapped by the outputter at eighty columns wide, surely.
      - second warning
random_free:
  test.configurable_test_state:
    - changes: False
    - result: False
    - comment: ""
