"""Evidence snapshots (取证截图): window cameras upload them, the supervision office views them, old ones expire."""
