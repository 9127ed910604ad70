"""考勤 Attendance: punches and leave in, each clerk's day out (results, the monthly sheet, make-up punches, the leave register)."""
