"""The hall's files, read and validated at start: the hall file, policy presets and overrides, the working-day calendar."""
