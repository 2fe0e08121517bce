@TARGET@/a/b/c:
  file.directory:
    - makedirs: True
    - mode: "0750"
@TARGET@/exists:
  file.directory
@TARGET@/no/parent:
  file.directory
