"""Subsets of the KubeRay CRDs' OpenAPI schemas, kept so manifests validate offline (see extract.py)."""
