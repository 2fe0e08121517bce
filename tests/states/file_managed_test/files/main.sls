@TARGET@/exists.txt:
  file.managed:
    - contents: new
@TARGET@/new.txt:
  file.managed:
    - contents: brand new
@TARGET@/newdir:
  file.directory
