"""Command-line options declared on command classes, and their parser.

::

    class Serve(AbstractCommand):
        port = Option('-p', '--port', type=int, default=8080, help="port to listen on")
        verbose = Flag('-v', '--verbose', help="say more")

Parsing stops at the first positional argument (or after ``--``): what
follows belongs to the subject or subcommand named by that argument.
"""

from peak_lite.running.interfaces import InvocationError

__all__ = ['Option', 'Flag', 'parseOptions', 'optionsOf', 'formatOptions']

_UNSET = object()


class Option:
    """An option taking a value: ``--name VALUE``, ``--name=VALUE`` or ``-n VALUE``.

    The attribute reads as the value given on the command line, else the
    value set on the instance (a constructor keyword), else ``default``.  A
    callable ``default`` is called with the command on first read, so it can
    look up a configuration property.
    """

    takesValue = True

    def __init__(self, *names, type=str, default=None, help='', metavar=None):
        if not names or not all(n.startswith('-') and len(n) > 1 for n in names):
            raise TypeError(f"Option names must start with '-', got {names!r}")
        self.names = names
        self.type = type
        self.default = default
        self.help = help
        self.metavar = metavar or getattr(type, '__name__', 'VALUE').upper()
        self.attrName = None

    def __set_name__(self, owner, name):
        self.attrName = name

    def __get__(self, ob, typ=None):
        if ob is None:
            return self
        d = ob.__dict__
        try:
            return d[self.attrName]
        except KeyError:
            pass
        value = self.default(ob) if callable(self.default) else self.default
        return d.setdefault(self.attrName, value)

    def __set__(self, ob, value):
        ob.__dict__[self.attrName] = value

    def convert(self, command, name, text):
        try:
            return self.type(text)
        except (TypeError, ValueError) as e:
            raise InvocationError(
                f"{command}: option {name} expects {self.metavar.lower()}, got {text!r} ({e});"
                f" see '{command} --help'") from None

    def usage(self):
        return ', '.join(f"{n} {self.metavar}" for n in self.names)


class Flag(Option):
    """An option without a value: present means True."""

    takesValue = False

    def __init__(self, *names, help=''):
        super().__init__(*names, type=bool, default=False, help=help)

    def usage(self):
        return ', '.join(self.names)


def optionsOf(cls):
    """``{'--name': Option}`` for every option ``cls`` and its bases declare."""
    found = {}
    for klass in reversed(cls.__mro__):
        for value in vars(klass).values():
            if isinstance(value, Option):
                for name in value.names:
                    found[name] = value
    return found


def parseOptions(command, argv, options):
    """Parse ``argv`` (arguments only, no program name); return ``(values, rest, help)``.

    ``values`` maps attribute names to parsed values, ``rest`` is everything
    from the first positional argument on, and ``help`` is True if ``--help``
    or ``-h`` was given.  Errors raise InvocationError naming ``command``.
    """
    values, wantHelp = {}, False
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == '--':
            i += 1
            break
        if not arg.startswith('-') or arg == '-':
            break
        name, eq, inline = arg.partition('=') if arg.startswith('--') else (arg, '', '')
        if name in ('--help', '-h') and not eq:
            wantHelp = True
            i += 1
            continue
        option = options.get(name)
        if option is None:
            raise InvocationError(
                f"{command}: unknown option {name!r}; see '{command} --help'")
        if not option.takesValue:
            if eq:
                raise InvocationError(f"{command}: option {name} takes no value, got {arg!r}")
            values[option.attrName] = True
        elif eq:
            values[option.attrName] = option.convert(command, name, inline)
        elif i + 1 < len(argv):
            i += 1
            values[option.attrName] = option.convert(command, name, argv[i])
        else:
            raise InvocationError(
                f"{command}: option {name} needs a value ({option.metavar.lower()})")
        i += 1
    return values, list(argv[i:]), wantHelp


def formatOptions(options):
    """The "Options:" part of a usage text, one line per option."""
    seen, lines = [], ["  -h, --help              show this help and exit"]
    for option in options.values():
        if option in seen:
            continue
        seen.append(option)
        left = option.usage()
        default = '' if option.takesValue is False or callable(option.default) \
            or option.default in (None, '') else f" (default: {option.default})"
        lines.append(f"  {left:<22}  {option.help}{default}")
    return "Options:\n" + "\n".join(lines)
