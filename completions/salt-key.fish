complete -c salt-key -s c -l config-dir -d 'Directory holding the master config file [default: /etc/salt]' -r -F
complete -c salt-key -l log-level -d 'Console log level' -r
complete -c salt-key -l generate -d 'Write a man page or shell completion script to stdout and exit' -r -f -a "man\t'A roff man page'
bash\t'Bash completion'
zsh\t'Zsh completion'
fish\t'Fish completion'"
complete -c salt-key -s l -l list -d 'List the keys in one state: acc, pre (or un), rej, den, or all' -r -f -a "acc\t''
accepted\t''
pre\t''
un\t''
unaccepted\t''
rej\t''
rejected\t''
den\t''
denied\t''
all\t''"
complete -c salt-key -s a -l accept -d 'Accept the pending keys matching ID (a glob; commas separate several)' -r
complete -c salt-key -s r -l reject -d 'Reject the pending keys matching ID' -r
complete -c salt-key -s d -l delete -d 'Delete the keys matching ID, in any state' -r
complete -c salt-key -s f -l finger -d 'Print the fingerprints of the keys matching ID' -r
complete -c salt-key -s p -l print -d 'Print the public keys matching ID' -r
complete -c salt-key -l gen-keys -d 'Write a new key pair NAME.pem and NAME.pub, to pre-seed minion NAME, and print its fingerprint (an existing NAME.pem is kept)' -r
complete -c salt-key -l gen-keys-dir -d 'The directory --gen-keys writes to, created if missing' -r -F
complete -c salt-key -l keysize -d 'Salt\'s RSA key size for --gen-keys (2048 to 32768); halite\'s keys are Ed25519, of one size, so it is checked and has no effect' -r
complete -c salt-key -l out -l output -d 'Outputter: key (default), json, yaml, nested, txt, raw' -r
complete -c salt-key -l out-indent -l output-indent -d 'Indent json and yaml output N spaces a level; a negative N prints json on one line and yaml in flow style [default: the config\'s output_indent, else json 4, yaml 2]' -r
complete -c salt-key -l out-file -l output-file -d 'Write the returns to FILE instead of stdout, emptying it first (uncoloured unless --force-color)' -r -F
complete -c salt-key -l version -d 'Print the version and exit'
complete -c salt-key -s V -l versions-report -d 'Print the versions of halite and the system, in Salt\'s report layout, and exit'
complete -c salt-key -s L -l list-all -d 'List every key (the default action)'
complete -c salt-key -s A -l accept-all -d 'Accept every pending key'
complete -c salt-key -s R -l reject-all -d 'Reject every pending key'
complete -c salt-key -s D -l delete-all -d 'Delete every key'
complete -c salt-key -s F -l finger-all -d 'Print every fingerprint, the master\'s own keys included'
complete -c salt-key -s P -l print-all -d 'Print every public key'
complete -c salt-key -s y -l yes -d 'Answer yes to the confirmation prompt'
complete -c salt-key -l include-accepted -d 'Let -r and -R reject accepted keys too'
complete -c salt-key -l include-rejected -d 'Let -a and -A accept rejected keys too'
complete -c salt-key -l include-denied -d 'Let -a, -A, -r and -R act on denied keys too'
complete -c salt-key -l include-all -d 'Same as --include-accepted with -r and --include-rejected with -a'
complete -c salt-key -l no-color -l no-colour -d 'Never colour the output'
complete -c salt-key -l force-color -l force-colour -d 'Colour the output even when it is not a terminal'
complete -c salt-key -l out-file-append -l output-file-append -d 'With --out-file: add to the end of FILE instead of emptying it'
complete -c salt-key -s h -l help -d 'Print help (see more with \'--help\')'
complete -c salt-key -s a -l accept -x -a '(salt-key -l all 2>/dev/null | string match -v \*:)'
complete -c salt-key -s r -l reject -x -a '(salt-key -l all 2>/dev/null | string match -v \*:)'
complete -c salt-key -s d -l delete -x -a '(salt-key -l all 2>/dev/null | string match -v \*:)'
complete -c salt-key -s f -l finger -x -a '(salt-key -l all 2>/dev/null | string match -v \*:)'
complete -c salt-key -s p -l print -x -a '(salt-key -l all 2>/dev/null | string match -v \*:)'
