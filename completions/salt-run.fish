complete -c salt-run -s c -l config-dir -d 'Directory holding the `master` / `minion` config files [default: /etc/salt]' -r -F
complete -c salt-run -s l -l log-level -d 'Console log level: quiet, critical, error, warning, info, debug, trace, garbage, all' -r
complete -c salt-run -l generate -d 'Write a man page or shell completion script to stdout and exit' -r -f -a "man\t'A roff man page'
bash\t'Bash completion'
zsh\t'Zsh completion'
fish\t'Fish completion'"
complete -c salt-run -l out -l output -d 'Outputter for the return: nested, json, yaml, txt, raw, quiet' -r
complete -c salt-run -l no-color -l no-colour -d 'Never colour the output'
complete -c salt-run -l force-color -l force-colour -d 'Colour the output even when it is not a terminal'
complete -c salt-run -s h -l help -d 'Print help'
complete -c salt-run -s V -l version -d 'Print version'
