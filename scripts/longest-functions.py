"""The longest Rust functions of the repository (lines from `fn` to its closing brace; test
modules, tests/, benches/ and examples/ left out).

    python3 scripts/longest-functions.py [REV|""] [N]

REV: a git revision to read instead of the working tree ("" for the working tree); N: how many
(default 15). Braces inside string and char literals and comments are not counted."""
import re, subprocess, sys
rev = sys.argv[1] if len(sys.argv) > 1 else None
import os
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if rev:
    files = subprocess.check_output(['git','-C',root,'ls-tree','-r','--name-only',rev]).decode().split()
    read = lambda f: subprocess.check_output(['git','-C',root,'show',f'{rev}:{f}']).decode(errors='replace')
else:
    files = subprocess.check_output(['git','-C',root,'ls-files']).decode().split()
    read = lambda f: open(f'{root}/{f}', errors='replace').read()
out = []
for f in files:
    if not f.endswith('.rs') or '/tests/' in f or f.startswith('tests/') or 'benches/' in f or 'examples/' in f:
        continue
    lines = read(f).split('\n')
    # cut at #[cfg(test)] mod tests
    for i, l in enumerate(lines):
        if l.startswith('#[cfg(test)]'):
            lines = lines[:i]; break
    i = 0
    while i < len(lines):
        m = re.match(r'\s*(pub(\([^)]*\))?\s+)?(async\s+)?(unsafe\s+)?(const\s+)?fn\s+(\w+)', lines[i])
        if m:
            depth = 0; started = False; j = i
            while j < len(lines):
                code = re.sub(r"b?r#*\"[^\"]*\"#*|b?\"(\\\\.|[^\"\\\\])*\"|'(\\\\.|[^'\\\\])'|//.*", '', lines[j])
                for ch in code:
                    if ch == '{': depth += 1; started = True
                    elif ch == '}': depth -= 1
                if started and depth == 0: break
                if not started and lines[j].rstrip().endswith(';'): break
                j += 1
            if started:
                out.append((j - i + 1, f, m.group(6)))
            i = j + 1 if started else i + 1
        else:
            i += 1
out.sort(reverse=True)
for n, f, name in out[:int(sys.argv[2]) if len(sys.argv) > 2 else 15]:
    print(f'{n:4} {f} {name}')
