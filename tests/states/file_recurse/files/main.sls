@TARGET@/copy:
  file.recurse:
    - source: salt://tree
    - file_mode: "0640"
    - dir_mode: "0750"
