"""The IVR: flows that admins write in YAML (``ivr_flows/*.yaml``), validated, run and hot-reloaded.

The language is described in ``docs/IVR.md``.  Modules, from the file to the call:

* :mod:`cosmo.ivr.settings` — :class:`IvrSettings` (the ``ivr:`` section) and business hours;
* :mod:`cosmo.ivr.steps` — the step models of the language; :mod:`cosmo.ivr.schema` its JSON Schema;
* :mod:`cosmo.ivr.source` — YAML with the line and column of every key and value;
* :mod:`cosmo.ivr.loader` and :mod:`cosmo.ivr.graph` — validation (every problem at
  ``file:line:column``) and compiling into a :class:`~cosmo.ivr.flow.Flow`;
* :mod:`cosmo.ivr.expressions` — safe expressions (``simpleeval``) and ``${...}`` templates;
* :mod:`cosmo.ivr.hours` — business-hours calendars;
* :mod:`cosmo.ivr.interpreter` and :mod:`cosmo.ivr.dialogue` — running a flow on a
  :class:`~cosmo.ivr.port.CallPort`;
* :mod:`cosmo.ivr.registry` — :class:`~cosmo.ivr.registry.FlowRegistry`, the flows served and their hot reload;
* :mod:`cosmo.ivr.simulator` and :mod:`cosmo.ivr.cli` — ``cosmo flows validate | simulate | schema``.

Importing the package imports none of them (the configuration imports the settings alone).
"""
