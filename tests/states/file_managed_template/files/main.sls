rendered:
  file.managed:
    - name: @TARGET@/motd
    - source: salt://motd.j2
    - template: jinja
    - defaults:
        greeting: Hello
        port: 22
    - context:
        port: 2222
        names: [ann, bob]
