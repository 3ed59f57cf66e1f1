"""Contains all the data models used in inputs/outputs"""

from .accepted import Accepted
from .body_issue_token import BodyIssueToken
from .book import Book
from .book_create import BookCreate
from .book_page import BookPage
from .book_sort import BookSort
from .book_update import BookUpdate
from .cancel_email_change_request import CancelEmailChangeRequest
from .email_request import EmailRequest
from .field_error import FieldError
from .import_line_result import ImportLineResult
from .import_line_result_status import ImportLineResultStatus
from .import_mode import ImportMode
from .import_report import ImportReport
from .language_code import LanguageCode
from .password_reset_confirm import PasswordResetConfirm
from .problem import Problem
from .profile_update import ProfileUpdate
from .refresh_request import RefreshRequest
from .registration import Registration
from .review import Review
from .review_create import ReviewCreate
from .review_page import ReviewPage
from .review_update import ReviewUpdate
from .role import Role
from .token_pair import TokenPair
from .user import User
from .user_admin_update import UserAdminUpdate
from .user_page import UserPage
from .verify_email_request import VerifyEmailRequest

__all__ = (
    "Accepted",
    "BodyIssueToken",
    "Book",
    "BookCreate",
    "BookPage",
    "BookSort",
    "BookUpdate",
    "CancelEmailChangeRequest",
    "EmailRequest",
    "FieldError",
    "ImportLineResult",
    "ImportLineResultStatus",
    "ImportMode",
    "ImportReport",
    "LanguageCode",
    "PasswordResetConfirm",
    "Problem",
    "ProfileUpdate",
    "RefreshRequest",
    "Registration",
    "Review",
    "ReviewCreate",
    "ReviewPage",
    "ReviewUpdate",
    "Role",
    "TokenPair",
    "User",
    "UserAdminUpdate",
    "UserPage",
    "VerifyEmailRequest",
)
