"""Hall devices as the server knows them: how they log in over HTTP, their registration and broker accounts, window-camera calibration."""
