"""What the HolmesGPT evaluation tests share: the labels file and a `kubectl describe pod` text in
the fixtures' format."""

from __future__ import annotations

from pathlib import Path

LABELS = Path(__file__).parents[1] / "data" / "holmesgpt_labels.json"

DESCRIBE = """Name:             web-5d98ffcfd-tz4nc
Namespace:        shop
Status:           Running
Controlled By:  ReplicaSet/web-5d98ffcfd
Containers:
  app:
    Image:          acme/web:1.0
    State:          Waiting
      Reason:       CrashLoopBackOff
    Last State:     Terminated
      Reason:       OOMKilled
      Exit Code:    137
    Ready:          False
    Restart Count:  4
    Limits:
      memory:  64Mi
Events:
  Type     Reason   Age                  From     Message
  ----     ------   ----                 ----     -------
  Warning  BackOff  2m (x9 over 6m)      kubelet  Back-off restarting failed container app in pod web
"""
