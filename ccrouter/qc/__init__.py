"""Quality control: live listening (ChanSpy), QC grading and its report."""
