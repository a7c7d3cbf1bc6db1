"""RunPod's JSON for pods and workers, one home for every surface: the services and the
controller answer typed records (``schemas/pod_records.py``), and REST v1, REST v2 and
GraphQL render them here. Nothing below ``api/`` builds these objects, and nothing outside
``api/`` imports this package (``tests/unit/test_layers.py``).

- ``pod``: the spec's Pod object (REST v1), of a pod or of a worker;
- ``workers``: ``includeWorkers``' Pod objects of live workers, kept while unchanged;
- ``rest_v2``: REST v2's ``Pod``;
- ``graphql``: the GraphQL ``Pod``.
"""
