"""巡查 Patrols: rounds, findings and their workflow, the weekly bulletin (通报)."""
