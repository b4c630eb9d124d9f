"""Sources: where raw Events come from (a replay file, a cluster watch).

What lives here: the replay readers (``replaying``, ``kubectl_text``, ``ordering`` and the
passes' compiled loops, ``dumplines``), our own API client
(``kubeconfig``, ``credentials``, ``kubeclient``, ``kubeapi``), the watch loop and its
retry decisions (``watching``, ``retrying``), checkpoints, leader election and the
owner objects the correlator reads (``checkpoint``, ``leader``, ``objects``).

May import: ``kubevents.model``, ``kubevents.errors``, ``kubevents.safeload`` and the
package's version; never a sink (``.importlinter``: source-not-sinks) nor the pipeline
(layers). Only ``credentials`` may import the ``kubernetes`` package, for the
legacy auth-provider fallback (``.importlinter``: own-client).
"""
