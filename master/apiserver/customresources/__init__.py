"""Custom resources: serving the kinds that CustomResourceDefinitions define.

`customapis` watches the stored CRDs and keeps the served set current;
`customresource` builds each served version's ResourceInfo and strategy;
`crschema` prunes and validates objects against a version's structural
schema; `printer` builds their Tables from additionalPrinterColumns.  The CRD
kind's own rules are `resources.apiextensions`.  This folder imports
`resources` and `schemas`; neither imports it (tests/unit/test_apiserver_import_cycles.py).
"""
