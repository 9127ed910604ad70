"""人脸 Faces: the staff register's encrypted templates, the sealed gallery sent to the terminals, their API and commands."""
