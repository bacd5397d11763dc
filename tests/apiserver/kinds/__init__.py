"""The served kinds, one module each: what discovery says of a kind (its ``ResourceType``) and
the rules its objects follow (a :class:`~tests.apiserver.kinds.base.Kind`). The registry that
lists them is tests/apiserver/registry.py; how to add a kind: tests/apiserver/kinds/base.py."""
