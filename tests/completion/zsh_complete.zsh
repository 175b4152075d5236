# What zsh's completion system offers: zsh -f zsh_complete.zsh FPATH_DIR OUT 'command line'
# prints every match the completion functions add, one a line, into OUT.
#
# An interactive zsh in a pseudo-terminal (zsh/zpty) loads compinit with FPATH_DIR first in
# $fpath, is sent the command line and a TAB, and its compadd is wrapped to write what it adds;
# the matches are zsh's own, only their display is skipped. The end of the completion is known
# from zsh itself (comppostfuncs), not guessed: nothing else is typed while it runs.
zmodload zsh/zpty || exit 2
local dir=$1 out=$2 line=$3
: >| $out
zpty z zsh -f -i
zpty -w z "PROMPT=; RPROMPT=; unsetopt auto_list; fpath=(${(q)dir} \$fpath); autoload -Uz compinit; compinit -u -D"
# With -O/-A/-D compadd only fills arrays (the functions' own filtering), adding no match.
zpty -w z "compadd() {
  if [[ \${@[1,(i)(-|--)]} == *-(O|A|D)\\ * ]]; then builtin compadd \"\$@\"; return; fi
  local -a hits; builtin compadd -A hits \"\$@\"; local r=\$?
  (( \$#hits )) && print -rl -- \$hits >> ${(q)out}
  return r
}"
zpty -w z "completion_done() { print COMPLETION''-DONE }; comppostfuncs=(completion_done)"
zpty -w z 'print SETUP''-DONE'
zpty -r z reply '*SETUP-DONE*' || exit 2
zpty -w -n z "$line"$'\t'
zpty -r z reply '*COMPLETION-DONE*' || exit 2
zpty -d z
