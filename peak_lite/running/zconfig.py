"""ZConfig: run a command described by a ZConfig schema and config file."""

import importlib.resources
import os

import ZConfig

from peak_lite.running.abstract import AbstractInterpreter
from peak_lite.running.interfaces import InvocationError

__all__ = ['ZConfigInterpreter', 'loadSchemaSpec', 'describeZConfigError']


def describeZConfigError(error):
    """``FILE:LINE: message`` for a ZConfig error (the parts it knows)."""
    message = getattr(error, 'message', None) or str(error)
    url, lineno = getattr(error, 'url', None), getattr(error, 'lineno', None)
    if url and url.startswith('file://'):
        url = url[len('file://'):]
    if url:
        return f"{url}:{lineno}: {message}" if lineno else f"{url}: {message}"
    return message


def loadSchemaSpec(spec):
    """Load a ZConfig schema from a file path or a ``package:resource.xml`` spec."""
    try:
        if os.path.isfile(spec):
            return ZConfig.loadSchema(os.path.abspath(spec))
        package, sep, resource = spec.partition(':')
        if not sep or not package or not resource:
            raise InvocationError(
                f"ZConfig: schema {spec!r} is neither a file nor a 'package:resource.xml' spec")
        try:
            ref = importlib.resources.files(package).joinpath(resource)
        except ModuleNotFoundError as e:
            raise InvocationError(
                f"ZConfig: schema {spec!r}: no package named {e.name!r}") from None
        if not ref.is_file():
            raise InvocationError(f"ZConfig: schema {spec!r}: package {package!r} has no"
                                  f" resource {resource!r}")
        with ref.open('r') as f:
            return ZConfig.loadSchemaFile(f, spec)
    except ZConfig.ConfigurationError as e:
        raise InvocationError(f"ZConfig: bad schema: {describeZConfigError(e)}") from e


class ZConfigInterpreter(AbstractInterpreter):
    """Load a config file with a ZConfig schema and run the command it describes"""

    usage = """
Usage: peak ZConfig SCHEMA CONFIG_FILE [arguments...]

SCHEMA is a schema file or 'package:resource.xml'.  The schema's top-level
datatype turns the loaded configuration into a command (or a command
factory), which is built at once and given 'CONFIG_FILE [arguments...]'.  A
config file starting with '#!/usr/bin/env -S peak ZConfig SCHEMA' can be
made executable and run directly.
"""

    def interpret(self, schemaSpec):
        if len(self.args) < 2:
            raise InvocationError(
                f"{self.commandName}: missing CONFIG_FILE after the schema {schemaSpec!r};"
                f" Usage: peak ZConfig SCHEMA CONFIG_FILE [arguments...]")
        schema = loadSchemaSpec(schemaSpec)
        filename = self.args[1]
        if not os.path.isfile(filename):
            raise InvocationError(
                f"{self.commandName}: config file {filename!r} does not exist; give the path"
                f" of a config file for schema {schemaSpec!r}")
        try:
            subject, _handlers = ZConfig.loadConfig(schema, os.path.abspath(filename))
        except ZConfig.ConfigurationError as e:
            raise InvocationError(describeZConfigError(e)) from e
        return self.getSubcommand(subject, argv=list(self.args[1:]))
