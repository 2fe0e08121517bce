replace name:
  file.line:
    - name: @TARGET@/settings.conf
    - mode: replace
    - match: "^name ="
    - content: name = new
ensure after port:
  file.line:
    - name: @TARGET@/settings.conf
    - mode: ensure
    - after: "^port ="
    - content: host = localhost
delete end:
  file.line:
    - name: @TARGET@/settings.conf
    - mode: delete
    - match: "^# end"
